"""Sample Lambda handlers for tests. Run a worker with cwd = this directory and HANDLER
`noop.handler` (Lambda's form), or from the repository root as `tests.handlers.noop:handler`."""
