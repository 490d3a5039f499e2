"""Origins: where the curated set's records come from. Each module declares one `Origin`
(flows/stages/base.py); flows/stages/registry.py lists them."""
