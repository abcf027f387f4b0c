from worker.lifecycle import main

raise SystemExit(main())
