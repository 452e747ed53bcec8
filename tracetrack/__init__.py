"""The `tracetrack` console script: one entry point for every service and tool."""
