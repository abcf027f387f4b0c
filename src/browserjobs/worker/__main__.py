import os

# One job per task (RunTask's overrides say which), or a long-running worker of the pool service.
if os.environ.get("WORKER_MODE") == "pool":
    from browserjobs.worker.pool import main
else:
    from browserjobs.worker.lifecycle import main

raise SystemExit(main())
