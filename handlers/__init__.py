"""One module per Frontline callback: parsed parameters and services in, a reply out."""
