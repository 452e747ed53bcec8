from tracetrack.cli import main

raise SystemExit(main())
