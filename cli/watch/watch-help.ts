/** What `drive push --help` and `drive pull --help` say about --watch (the commands add it with addHelpText). */
export const PUSH_WATCH_HELP = `
Watching (--watch):
  drive push --watch LOCAL_DIR REMOTE_DIR pushes the tree, then keeps pushing
  local changes as they settle: a file is sent once it has not been written
  to for a second, and is checked again after hashing and after sending, so
  the server never holds a half-written version. Local deletes reach the
  server only with --delete. File-system events are hints: the whole tree is
  rescanned now and then (every minute, with jitter) and at once when the
  watcher fails; past the inotify limit (fs.inotify.max_user_watches) it
  warns, and polls instead. Ctrl-C ends the watch: it prints the summary and
  exits 0 (or, when some files failed, with the first failure's code).
  Killed outright, it loses nothing: run it again.`;

export const PULL_WATCH_HELP = `
Watching (--watch):
  drive pull --watch REMOTE_DIR LOCAL_DIR pulls the tree, then follows the
  server's change feed and applies every add, edit, delete and rename as it
  comes, each atomically. A local file changed since drive wrote it is never
  overwritten, deleted or moved: the remote version lands beside it as
  "name (conflicted copy <host> <date>).ext". It saves its place in the feed
  after each batch it applied: killed at any point, or with the server
  restarted, it catches up from there when run again (and reconnects by
  itself while it runs). Ctrl-C ends the watch: it prints the summary and
  exits 0 (or, when some files failed, with the first failure's code).`;
