"""Services own the rules. Views, the API, the CLI and jobs call them and then commit."""
