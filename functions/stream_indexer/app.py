"""Stream indexer Lambda: DynamoDB stream records -> OpenSearch (all logic in the ddbsync layer).

Settings are read and validated here, at cold start: a bad configuration fails
the init with one message naming every problem (see ddbsync.config).

The cyclic garbage collector is off while the layer's modules load and the handler is
built (as ddbsync.gcpause does around decoding): nothing made here is garbage with
cycles, and the collections took about 7% of the cold start's CPU (bench/README.md,
"Cold start and layer size").
"""

import gc

gc.disable()
try:
    from ddbsync.handler import make_handler

    handler = make_handler()
finally:
    gc.enable()
