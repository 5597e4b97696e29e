-- The digests of each host's latest results (see store/digest.rs): one
-- versioned blob per host, written with every snapshot; NULL (after a drift
-- event, or for a host stored before this migration) means the next
-- snapshot of the host is compared with its stored rows one by one.
ALTER TABLE hosts ADD COLUMN result_digests BLOB;
