-- Break-glass unlock of login throttling (`modelwatch user unlock`): failed logins before this
-- time (UTC ms) no longer count against the user. NULL: never unlocked.
ALTER TABLE users ADD COLUMN unlocked_at BIGINT;
