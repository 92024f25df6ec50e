//! Reading the rules folder from disk. What the rules mean, and every check
//! on them, is the core's ([`tocsin_core::rules`]); this module only finds
//! the files and reads them.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

pub use tocsin_core::rules::{Diagnostic, Rules, Source};

/// The rules in force: one `Rules`, replaced whole when the folder is
/// reloaded (`tocsin serve` on SIGHUP or a changed file). Each decision
/// takes the rules once ([`LiveRules::get`]) and decides on that one set,
/// so no decision ever sees half of an old folder and half of a new one.
#[derive(Debug, Clone)]
pub struct LiveRules {
    current: Arc<RwLock<Arc<Rules>>>,
}

impl LiveRules {
    pub fn new(rules: Rules) -> Self {
        Self { current: Arc::new(RwLock::new(Arc::new(rules))) }
    }

    /// Rules already shared (`tocsin simulate` runs many cases on one set).
    pub fn shared(rules: Arc<Rules>) -> Self {
        Self { current: Arc::new(RwLock::new(rules)) }
    }

    /// The rules in force now.
    pub fn get(&self) -> Arc<Rules> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts `rules` in force for everything decided from now on.
    pub fn replace(&self, rules: Rules) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(rules);
    }
}

/// Reads and checks every `*.toml` file in `dir` (and the holiday feeds they
/// name, beside them).
pub fn load(dir: &Path) -> Result<Rules, Vec<Diagnostic>> {
    let sources = read_dir(dir)?;
    Rules::build(&sources, &read)
}

/// Checks rules given as `(file name, text)` pairs; files they name are read
/// from disk. For tests and tools.
pub fn from_sources(files: &[(&str, &str)]) -> Result<Rules, Vec<Diagnostic>> {
    let sources: Vec<Source> =
        files.iter().map(|(p, t)| Source { path: PathBuf::from(p), text: (*t).to_owned() }).collect();
    Rules::build(&sources, &read)
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| e.to_string())
}

fn read_dir(dir: &Path) -> Result<Vec<Source>, Vec<Diagnostic>> {
    let fail = |message: String| vec![Diagnostic { file: dir.to_owned(), line: 0, message }];
    let entries = std::fs::read_dir(dir).map_err(|e| {
        fail(format!("cannot read the rules folder ({e}): run from the folder that holds rules/, or set [paths] rules in tocsin.toml"))
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(fail("holds no *.toml files: copy the shipped rules/ folder as a start".into()));
    }
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match std::fs::read_to_string(&path) {
            Ok(text) => sources.push(Source { path, text }),
            Err(e) => errors.push(Diagnostic {
                file: path,
                line: 0,
                message: format!("cannot read ({e}); it must be UTF-8 text"),
            }),
        }
    }
    if errors.is_empty() { Ok(sources) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn a_missing_rules_folder_says_how_to_fix_it() {
        let e = super::load(Path::new("/nonexistent/rules")).unwrap_err();
        assert!(e[0].to_string().contains("set [paths] rules"), "{}", e[0]);
    }

    #[test]
    fn the_shipped_rules_folder_loads() {
        let rules = super::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"));
        assert!(rules.is_ok(), "{rules:#?}");
    }
}
