"""What a scrape or a probe sees: the Prometheus reader and HTTP server (``server``), host and
process metrics (``resources``, over the readings of ``probes``) and the /health judgement
(``health``)."""
