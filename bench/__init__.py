"""`make bench`: the measurements behind BENCHMARKS.md (DESIGN §7). Not part of `make test`."""
