"""A small site on loopback for the demo and the end-to-end tests: pages with data, slow and hanging pages."""
