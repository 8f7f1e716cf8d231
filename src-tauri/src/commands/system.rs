use tauri::State;

use crate::dto::SystemInfo;
use crate::state::AppState;

#[tauri::command]
pub fn system_info(state: State<'_, AppState>) -> SystemInfo {
    let mem = crate::library::memory();
    let mut sys = sysinfo::System::new();
    sys.refresh_cpu_list(sysinfo::CpuRefreshKind::nothing());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let brand = sys.cpus().first().map(|c| c.brand().trim().to_string()).filter(|b| !b.is_empty());
    SystemInfo {
        total_memory: mem.total,
        available_memory: mem.available,
        cpu: format!("{} ({threads} threads)", brand.unwrap_or_else(|| std::env::consts::ARCH.to_string())),
        threads,
        kernels: pocketlm::kernels::active().name().to_string(),
        models_dir: state.paths.models_dir.display().to_string(),
        data_dir: state.paths.data_dir.display().to_string(),
        platform: if cfg!(any(target_os = "android", target_os = "ios")) { "mobile" } else { "desktop" },
    }
}
