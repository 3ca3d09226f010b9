# From knowledge/performance/14-production-performance-monitoring.md line 85. Written by kb validate-snippets: edit the Markdown, not this file.
# Imports added by kb (not in the docs):
import time

from prometheus_client import Histogram

REQUEST_TIME = Histogram('response_latency_seconds', 'Response latency (seconds)')

@REQUEST_TIME.time()
def create_response(request):
  '''A dummy function'''
  time.sleep(1)
