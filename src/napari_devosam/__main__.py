import sys

from napari_devosam.cli import main

sys.exit(main())
