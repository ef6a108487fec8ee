"""`python -m mnist_lab`: the `mnist-lab` command line."""

from mnist_lab.cli import main

raise SystemExit(main())
