"""What auditors ask of the record: the hash chain, verification, history and replays."""
