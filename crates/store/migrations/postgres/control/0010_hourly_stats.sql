-- Delivery counts per UTC hour (hours since the Unix epoch), so the console can chart the last
-- day hour by hour; the per-day figures are their sums. A day's counts become its first hour's.
ALTER TABLE delivery_stats RENAME COLUMN day TO hour;
UPDATE delivery_stats SET hour = hour * 24;
