from browserjobs.worker.lifecycle import main

raise SystemExit(main())
