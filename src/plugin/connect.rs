//! The user's cluster, as kubectl would find it: `--kubeconfig`, else `$KUBECONFIG`, else
//! `~/.kube/config`; `--context`, else the current context; `-n`, else the context's namespace.

use std::io::ErrorKind;

use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};

use super::args::Global;
use super::error::Error;

/// A client and the namespace the command works in.
#[derive(Clone)]
pub struct Target {
    pub client: kube::Client,
    pub namespace: String,
}

pub async fn connect(global: &Global) -> Result<Target, Error> {
    let kubeconfig = match &global.kubeconfig {
        Some(path) => Kubeconfig::read_from(path),
        None => Kubeconfig::read(),
    }
    .map_err(|e| kubeconfig_error(e, global))?;
    let options = KubeConfigOptions {
        context: global.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| kubeconfig_error(e, global))?;
    let namespace = global
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = kube::Client::try_from(config).map_err(|e| Error::Kubeconfig {
        problem: format!("cannot build a client from the kubeconfig ({e})"),
        fix: "check the cluster and user of your context (`kubectl config view --minify`)"
            .to_owned(),
    })?;
    Ok(Target { client, namespace })
}

/// Words kube's kubeconfig errors as what to do about them.
pub fn kubeconfig_error(err: KubeconfigError, global: &Global) -> Error {
    let looked = || match (&global.kubeconfig, std::env::var_os("KUBECONFIG")) {
        (Some(path), _) => format!("--kubeconfig {}", path.display()),
        (None, Some(env)) if !env.is_empty() => {
            format!("KUBECONFIG={}", env.to_string_lossy())
        }
        _ => "~/.kube/config".to_owned(),
    };
    match err {
        KubeconfigError::FindPath => Error::NoKubeconfig { looked: looked() },
        KubeconfigError::ReadConfig(io, _) if io.kind() == ErrorKind::NotFound => {
            Error::NoKubeconfig { looked: looked() }
        }
        KubeconfigError::CurrentContextNotSet => Error::Kubeconfig {
            problem: "the kubeconfig has no current context".to_owned(),
            fix: "pick one with --context NAME or `kubectl config use-context NAME`".to_owned(),
        },
        KubeconfigError::LoadContext(name) => Error::Kubeconfig {
            problem: format!("context {name:?} is not in the kubeconfig"),
            fix: "list the contexts with `kubectl config get-contexts`".to_owned(),
        },
        KubeconfigError::LoadClusterOfContext(name) => Error::Kubeconfig {
            problem: format!("cluster {name:?} of the context is not in the kubeconfig"),
            fix: "check it with `kubectl config view`".to_owned(),
        },
        other => Error::Kubeconfig {
            problem: format!("cannot use the kubeconfig ({}: {other})", looked()),
            fix: "check it with `kubectl config view`".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::error::EXIT_NO_KUBECONFIG;

    #[test]
    fn a_missing_file_says_how_to_point_at_one() {
        let global = Global {
            kubeconfig: Some("/nonexistent/kc".into()),
            ..Global::default()
        };
        let err = kubeconfig_error(
            KubeconfigError::ReadConfig(
                std::io::Error::from(ErrorKind::NotFound),
                "/nonexistent/kc".into(),
            ),
            &global,
        );
        assert_eq!(
            err.to_string(),
            "no kubeconfig found (--kubeconfig /nonexistent/kc): point at one with --kubeconfig PATH or KUBECONFIG=PATH"
        );
        assert_eq!(err.exit_code(), EXIT_NO_KUBECONFIG);
    }

    #[test]
    fn an_unknown_context_is_named() {
        let err = kubeconfig_error(
            KubeconfigError::LoadContext("prod".into()),
            &Global::default(),
        );
        assert_eq!(
            err.to_string(),
            "context \"prod\" is not in the kubeconfig: list the contexts with `kubectl config get-contexts`"
        );
        assert_eq!(err.exit_code(), EXIT_NO_KUBECONFIG);
    }

    #[tokio::test]
    async fn connect_reads_the_given_file_context_and_namespace() {
        let dir = std::env::temp_dir().join(format!("kubectl-vnc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config");
        std::fs::write(
            &path,
            r#"apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: u
  user: {token: t}
contexts:
- name: one
  context: {cluster: a, user: u, namespace: ns-one}
- name: two
  context: {cluster: a, user: u, namespace: ns-two}
current-context: one
"#,
        )
        .unwrap();
        let mut global = Global {
            kubeconfig: Some(path.clone()),
            ..Global::default()
        };
        assert_eq!(connect(&global).await.ok().unwrap().namespace, "ns-one");
        global.context = Some("two".into());
        assert_eq!(connect(&global).await.ok().unwrap().namespace, "ns-two");
        global.namespace = Some("explicit".into());
        assert_eq!(connect(&global).await.ok().unwrap().namespace, "explicit");
        global.context = Some("three".into());
        assert!(matches!(
            connect(&global).await.err().unwrap(),
            Error::Kubeconfig { .. }
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
