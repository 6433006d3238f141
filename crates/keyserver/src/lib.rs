//! The notification server (通知サーバー): publish, key validation, signed exports, indexes, retention, public statistics.
