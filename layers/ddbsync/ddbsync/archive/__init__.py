"""Flow 5, the archive (in progress): every stream record, as Lambda delivers it, to Firehose.

``lines.py`` turns a record into its archive line, ``sender.py`` puts lines to Firehose in
batches with retries, ``archiver.py`` settles each record once, ``settings.py`` reads the
environment and ``handler.py`` is the Lambda handler (``functions/archiver/app.py``).
"""
