import sys

from crm2erp.cli import main

sys.exit(main())
