"""The function worker runtime (`esm worker`): serves a Lambda Python handler over gRPC.

The gRPC side (main, service, pool, environment) runs in the worker process; each execution
environment is a separate Python process running `environment_main`, which imports only the
light modules (protocol, invocation, context, handler loading) so it starts fast.
"""
