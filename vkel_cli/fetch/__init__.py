"""How bytes arrive: HTTP with deadlines and caps, the address policy, the hub check, the one image layer.
Imports core/ only."""
