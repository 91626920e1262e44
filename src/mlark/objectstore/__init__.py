"""The content-addressed chunk store: chunking, packs, and verified reads."""
