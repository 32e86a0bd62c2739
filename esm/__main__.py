from esm.cli import main

raise SystemExit(main())
