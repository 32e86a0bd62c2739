"""The function worker runtime (`esm worker`): serves a function over gRPC.

The gRPC side (main, service, pool, environments) runs in the worker process; each execution
environment is a separate process in a `sandbox`: either esm's own Python runtime
(`environment_main`, which imports only the light modules so it starts fast, over a framed pipe)
or any Lambda runtime's `bootstrap` talking to the worker through the Runtime API (`runtime_api`).
"""
