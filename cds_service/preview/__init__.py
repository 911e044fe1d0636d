"""The try-it page at /preview: a small EHR in the browser that calls the real hook endpoint,
renders the cards, sends feedback and charts the glucocorticoid exposure (CDS_PREVIEW=true).

``routes.py`` serves the page, its static files and two JSON endpoints; ``fixtures.py`` lists
the bundled requests; ``chart.py`` turns the exposure summary into the chart's series. The
page's JavaScript and CSS are package data in ``static/`` (no CDN, no inline script).
"""
