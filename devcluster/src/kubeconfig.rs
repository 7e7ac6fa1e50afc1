//! The kubeconfig file clients (kubectl, kube::Client, tend) use to reach devcluster.

use std::path::Path;

pub fn render(url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: devcluster\n  cluster:\n    server: {url}\n\
         users:\n- name: devcluster\n  user: {{}}\ncontexts:\n- name: devcluster\n  context:\n    cluster: devcluster\n    \
         user: devcluster\n    namespace: default\ncurrent-context: devcluster\npreferences: {{}}\n"
    )
}

pub fn write(path: &Path, url: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, render(url))
}
