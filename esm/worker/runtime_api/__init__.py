"""Lambda's Runtime API (2018-06-01), served by `esm worker` to each execution environment whose
runtime is a `bootstrap` (AWS's runtime clients, a custom runtime): pure rules, HTTP, server."""
