"""The judged stages after generation. Each module declares one `Judge`
(flows/stages/base.py); flows/stages/registry.py lists them."""
