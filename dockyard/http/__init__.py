"""HTTP adapters: parse, authorize, call a service, render. No registry rules live here."""
