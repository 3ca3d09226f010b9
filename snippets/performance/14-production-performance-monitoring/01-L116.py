# From knowledge/performance/14-production-performance-monitoring.md line 116. Written by kb validate-snippets: edit the Markdown, not this file.
from prometheus_client import Gauge

g = Gauge('my_inprogress_requests', 'Description of gauge')
g.inc()      # Increment by 1
g.dec(10)    # Decrement by given value
g.set(4.2)   # Set to a given value
