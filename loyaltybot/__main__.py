from loyaltybot.cli import main

raise SystemExit(main())
