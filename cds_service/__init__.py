"""CDS Hooks 2.0 service for long-term systemic glucocorticoid therapy."""

__version__ = "0.1.0"
