// Raw better-sqlite3 helpers for measuring a database file from outside the store.
import Database from 'better-sqlite3';
import { fileBytes } from './common.mjs';

/**
 * Checkpoints the WAL into the main file (TRUNCATE) through a second connection and
 * returns the file's logical size. The store's own connection must hold no read
 * transaction (true between calls: better-sqlite3 statements finish synchronously).
 */
export function checkpointedSize(path) {
  const walBefore = fileBytes(path).wal;
  const db = new Database(path);
  try {
    const [row] = db.pragma('wal_checkpoint(TRUNCATE)');
    const pageSize = db.pragma('page_size', { simple: true });
    const pageCount = db.pragma('page_count', { simple: true });
    const freelist = db.pragma('freelist_count', { simple: true });
    return {
      bytes: pageSize * pageCount,
      usedBytes: pageSize * (pageCount - freelist),
      pageSize,
      walBytesBeforeCheckpoint: walBefore,
      checkpointBusy: row?.busy === 1,
      walBytesAfterCheckpoint: fileBytes(path).wal,
    };
  } finally {
    db.close();
  }
}

export { Database };
