import sys

sys.exit("python -m deploy is not implemented yet: see the deploy issue")
