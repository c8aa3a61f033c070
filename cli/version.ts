/** Reported by --version and kept in step with package.json by hand at release. */
export const VERSION = "0.1.0";
