// What an empty place says: what is missing and what to do about it.
import type { ComponentChildren } from "preact";
import { Icon, type IconName } from "./Icon";

export function EmptyState({ icon, title, children }: { icon: IconName; title: string; children?: ComponentChildren }) {
  return (
    <div class="empty" data-testid="empty-state">
      <div class="empty-icon">
        <Icon name={icon} size={28} />
      </div>
      <h2 class="empty-title">{title}</h2>
      {children && <div class="empty-body">{children}</div>}
    </div>
  );
}
