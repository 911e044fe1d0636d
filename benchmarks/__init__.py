"""Load benchmark of the CDS service against a parse-only ceiling app (``make bench``)."""
