"""The scalability plan's claims, each measured off and on in one run."""
