"""whynoip: why has my instance no IP?"""

__version__ = "0.1.0"
