/** The root's gitignore-syntax file (cli/local/filter.ts reads it): a change to it means a full rescan. */
export const IGNORE_FILE_NAME = ".driveignore";
