"""What every integration shares: the HTTP session to a remote API and its error types."""
