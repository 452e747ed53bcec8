"""Code shared by the app, the exporter and the alert bridge. Imports none of them."""
