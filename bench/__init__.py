"""`make bench`: the measurements behind BENCHMARKS.md (docs/architecture.md §7). Not part of `make test`."""
