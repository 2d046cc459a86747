"""The audit's SQL: the hash chain's table, raw reads of the log, guards and replays."""
