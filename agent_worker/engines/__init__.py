"""Speech and language engines for the worker, and the factory that builds them from config.

Nothing is re-exported here: importing one engine must not pull in the vendor plugins the
factory imports.
"""
