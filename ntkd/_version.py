"""The installed version of ntkd (a source tree without installation reports ``0.1.0.dev0``)."""
from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("ntkd")
except PackageNotFoundError:  # running from a source tree without installation
    VERSION = "0.1.0.dev0"
