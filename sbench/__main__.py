from sbench.cli import main

raise SystemExit(main())
