import type { AgentListing } from '../hooks/useAgents';

interface Props {
  agents: AgentListing[];
  value: string;
  disabled: boolean;
  onChange: (agentId: string) => void;
}

export function AgentPicker({ agents, value, disabled, onChange }: Props) {
  const chosen = agents.find((a) => a.id === value);
  return (
    <div className="picker">
      <label htmlFor="agent">Agent</label>
      <select id="agent" value={value} disabled={disabled} onChange={(e) => onChange(e.target.value)}>
        {agents.map((agent) => (
          <option key={agent.id} value={agent.id}>
            {agent.name}
          </option>
        ))}
      </select>
      {chosen?.description ? <p className="hint">{chosen.description}</p> : null}
    </div>
  );
}
